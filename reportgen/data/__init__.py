"""Data: folder scanning, robust decoding, splits and the built-in shapes demo.

Returns numpy arrays; knows nothing of models.
"""

from reportgen.data.decode import IMAGE_SUFFIXES, ImageDecodeError, decode_image
from reportgen.data.folder import Dataset, Split, load_dataset, split_counts
from reportgen.data.images import imagenet_names, load_images
from reportgen.data.properties import ImageProperties, image_properties, split_properties
from reportgen.data.shapes import CLASSES as SHAPE_CLASSES
from reportgen.data.shapes import generate as generate_shapes

__all__ = ["Dataset", "Split", "load_dataset", "split_counts", "decode_image", "ImageDecodeError",
           "IMAGE_SUFFIXES", "SHAPE_CLASSES", "generate_shapes",
           "load_images", "imagenet_names", "ImageProperties", "image_properties",
           "split_properties"]
