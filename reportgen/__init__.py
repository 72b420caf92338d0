"""reportgen: turn a Keras image classifier and a folder of images into a publishable report.

Importing the package imports nothing heavy; TensorFlow is loaded only by the layers that need it
(model, explain, pipeline).
"""

__version__ = "0.1.0"
