"""Evidence: the bundled microbenchmark driver, validation of predictions against measurements, the fits of
hardware profiles (calibrate), and the published production measurements checked end to end."""
