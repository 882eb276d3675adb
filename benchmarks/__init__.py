"""rnnbench: an asv suite timing one LSTM training step per framework, implementation and scenario."""
