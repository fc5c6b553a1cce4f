"""The loop's readers: outcomes joined to the prediction log, live metrics, drift."""
