"""Generic neural-network layers shared by the recipes (TCN, attention, U-Net blocks, ...).

Import the submodule you need, e.g. ``from a2v.nn.tcn import TCN``; this package file stays
empty so that importing one layer does not import the others.
"""
