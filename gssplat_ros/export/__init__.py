"""Builds encoder artifacts: ONNX graphs (and their graph wrappers), int8 quantisation, TensorRT engines,
parity checks. Sits above `gssplat_ros.runtime` (which only loads what is built here) and below
`gssplat_ros.runtime_factory` (which asks this package for a missing artifact).

Usage:
    gssplat export onnx --views 4 --width 160 --height 120      # or: python -m gssplat_ros.export onnx ...
"""
