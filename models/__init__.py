"""Forecasters of the CSI 300 next-session direction: features, labels, models, training."""
