"""Sweeps: many training runs from one file, on this machine or on a cluster."""
