"""tf-ccfrec: CCFRec sequential recommendation on TensorFlow, TFRS and TFX.

Importing the package is cheap and imports no TensorFlow; entry points import `tf_ccfrec.compat`
first, which prepares TensorFlow, TFRS and ScaNN.
"""

from tf_ccfrec.version import __version__

__all__ = ["__version__"]
