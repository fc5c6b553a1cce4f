"""The serving side of the wall: what the MLServer process imports.

It may import the top level (config, errors, schema, layout, artifact formats) and the model
libraries, never santander.training: tests/test_wall.py holds that.
"""
