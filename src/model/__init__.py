"""The forecaster: features, windows, the LSTM, baselines, evaluation, registry, drift."""
