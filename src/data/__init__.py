"""Market data: trade records, loaders, bars, the lake, feeds and quality checks."""
