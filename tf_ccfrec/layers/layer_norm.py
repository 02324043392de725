"""LayerNormalization over the last axis with a hand-written gradient."""

from __future__ import annotations

import tensorflow as tf

# BERT's epsilon, as in the authors' release: every LayerNorm of the model uses it.
LAYER_NORM_EPSILON = 1e-12


def _layer_norm(x, gamma, beta, epsilon: float):
    """LayerNorm of x [..., dim] over its last axis in float32, returned in x's dtype, and its
    gradient in one expression: dx = inv_std * (g - mean(g) - x_hat * mean(g * x_hat)) with
    g = dy * gamma. Autodiff through `tf.nn.moments` and `tf.nn.batch_normalization` takes about
    1.6x as long over a Beauty catalog's code tokens (docs/model.md)."""

    @tf.custom_gradient
    def forward(x, gamma, beta):
        z = tf.cast(x, tf.float32)
        centered = z - tf.reduce_mean(z, axis=-1, keepdims=True)
        inv_std = tf.math.rsqrt(
            tf.reduce_mean(tf.square(centered), axis=-1, keepdims=True) + epsilon)
        normalized = centered * inv_std

        def grad(dy):
            dy = tf.cast(dy, tf.float32)
            g = dy * gamma
            dx = inv_std * (g - tf.reduce_mean(g, axis=-1, keepdims=True) - normalized
                            * tf.reduce_mean(g * normalized, axis=-1, keepdims=True))
            rows = tf.reshape(dy * normalized, [-1, tf.shape(dy)[-1]])
            return (tf.cast(dx, x.dtype), tf.reduce_sum(rows, axis=0),
                    tf.reduce_sum(tf.reshape(dy, [-1, tf.shape(dy)[-1]]), axis=0))

        return tf.cast(normalized * gamma + beta, x.dtype), grad

    return forward(x, gamma, beta)


@tf.keras.utils.register_keras_serializable(package="tf_ccfrec")
class LayerNormalization(tf.keras.layers.LayerNormalization):
    """tf.keras `LayerNormalization` (same arguments, variables and checkpoints) whose gradient
    is written out (`_layer_norm`) when it normalizes the last axis with scale and offset, its
    statistics in float32 for any compute dtype; other settings take the stock path.

    Call args:
      inputs: float [..., dim].

    Returns:
      float [..., dim], the inputs' dtype.
    """

    def call(self, inputs):
        if (not isinstance(inputs, tf.Tensor) or not (self.scale and self.center)
                or self.axis != [inputs.shape.rank - 1]):
            return super().call(inputs)
        inputs = tf.cast(inputs, self.compute_dtype)
        # Read first: the custom gradient takes tensors (a variable, e.g. a distributed one,
        # would have to be declared to it).
        return _layer_norm(inputs, tf.convert_to_tensor(self.gamma),
                           tf.convert_to_tensor(self.beta), self.epsilon)
