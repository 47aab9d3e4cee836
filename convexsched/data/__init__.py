"""Stage 1, the data: order books and what is read from them.

``book`` (the ``Book`` table and its cleaning), ``loaders`` (files to books, with presets),
``binance``, ``mbo`` and ``levels`` (event feeds rebuilt into books), ``sessions`` (trading
sessions and buckets), ``synthetic`` (the generated book), ``features`` (the per-bucket state)
and ``slippage`` (book walks: what a slice of x shares costs).
"""
