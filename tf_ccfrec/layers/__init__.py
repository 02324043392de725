"""tf_keras layers of CCFRec (Keras 2, as TFRS requires). One layer per module."""
