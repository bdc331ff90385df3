"""Backend-specific training steps; the ADMM math itself lives in `keras.ops`."""
