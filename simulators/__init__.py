"""Sensor and log simulators: rotating machines with progressing faults, realistic log text, ground truth."""
