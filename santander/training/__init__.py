"""The training side of the wall: data, families, selection, evaluation, the pipelines.

It may import the top level. The server never imports it: what it writes (artifacts, model
settings) loads without it.
"""
