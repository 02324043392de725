"""A BERT sentence embedder's inference graph in TensorFlow ops that oneDNN fuses.

keras-hub's `BertTextEmbedder`, called as a Keras model, runs every dense layer as a product
followed by separate kernels for the bias, the GELU and the layer norm, and the attention's
query, key, value and output projections as four Einsums. On CPU a third of its time goes to
those elementwise kernels (docs/scale.md, "Text encoding at scale"). `fused_embedder` computes
the same function from the same weights with the ops Grappler's oneDNN remapper fuses:

- one product for the query, key and value projections (the query's 1/sqrt(head dim) folded
  into its weights), then one batched product each for the scores and the weighted values;
- MatMul + BiasAdd + GELU (tanh approximation, as keras-hub's BERT) as one kernel, and
  MatMul + BiasAdd as one kernel everywhere else;

The residual stream, the layer norms and the pooling stay float32. With `precision` "bfloat16"
only the products run in bfloat16 (their inputs and weights rounded, float32 accumulation), so
the vectors stay far closer to float32 than the Keras model run in bfloat16, whose residual
stream is bfloat16 too.

Inputs and output (`fused_embedder`'s function):
  token_ids: int32 [batch, length], [CLS] ... [SEP] then the tokenizer's padding id.
  padding_mask: bool [batch, length], True on real tokens (a prefix of each row).
  returns float32 [batch, hidden], unit rows: the mean of the last layer over real tokens.
"""

from __future__ import annotations

import math

import numpy as np

PRECISIONS = ("float32", "bfloat16")
LAYER_NORM_EPSILON = 1e-12  # keras-hub's BertBackbone


def fused_embedder(embedder, precision: str = "float32"):
    """A `tf.function` of (token_ids, padding_mask) computing `embedder`'s sentence vectors.

    Args:
      embedder: a keras-hub `BertTextEmbedder` with mean pooling and L2 normalization (its
        weights are read once, as float32).
      precision: "float32" or "bfloat16" (the products' inputs and weights).

    Raises:
      ValueError: an unknown precision, or an embedder that does not pool by the mean or does
        not normalize.
    """
    import tensorflow as tf

    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if getattr(embedder, "pooling_mode", "mean") != "mean" or not getattr(embedder, "normalize",
                                                                         True):
        raise ValueError("the fused graph computes mean pooling with L2 normalization; this "
                         f"embedder pools by {embedder.pooling_mode!r} (normalize="
                         f"{embedder.normalize})")
    backbone = embedder.backbone
    weights = {w.path: np.asarray(w.numpy(), np.float32) for w in backbone.weights}
    config = backbone.get_config()
    heads, hidden = config["num_heads"], config["hidden_dim"]
    product_dtype = tf.bfloat16 if precision == "bfloat16" else tf.float32

    def tensors(arrays, dtypes):
        return tuple(tf.constant(a, d) for a, d in zip(arrays, dtypes))

    products, norms = (product_dtype, product_dtype), (tf.float32, tf.float32)
    layers = [{name: tensors(arrays, norms if name.endswith("norm") else products)
               for name, arrays in _layer_arrays(weights, f"transformer_layer_{i}/", hidden,
                                                 heads).items()}
              for i in range(config["num_layers"])]
    token_table, positions, segment = tensors(
        (weights["token_embedding/embeddings"], weights["position_embedding/embeddings"],
         weights["segment_embedding/embeddings"][0]), (tf.float32,) * 3)
    norm = tensors((weights["embeddings_layer_norm/gamma"], weights["embeddings_layer_norm/beta"]),
                   norms)

    def dense(x, kernel, bias, gelu=False):
        y = tf.nn.bias_add(tf.matmul(tf.cast(x, product_dtype), kernel), bias)
        return tf.nn.gelu(y, approximate=True) if gelu else y

    def layer_norm(x, gamma_beta):
        mean, variance = tf.nn.moments(x, [-1], keepdims=True)
        return tf.nn.batch_normalization(x, mean, variance, gamma_beta[1], gamma_beta[0],
                                         LAYER_NORM_EPSILON)

    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.int32),
                                  tf.TensorSpec([None, None], tf.bool)])
    def embed(token_ids, padding_mask):
        batch, length = tf.shape(token_ids)[0], tf.shape(token_ids)[1]
        x = tf.gather(token_table, token_ids) + positions[:length] + segment
        x = tf.reshape(layer_norm(x, norm), [batch * length, hidden])
        # Keys at padding get a large negative score (Keras' masked softmax adds -1e9).
        key_bias = tf.cast(tf.where(padding_mask, 0.0, -1e9), product_dtype)[:, None, None, :]
        for layer in layers:
            qkv = tf.reshape(dense(x, *layer["qkv"]), [batch, length, 3, heads, -1])
            q, k, v = tf.unstack(tf.transpose(qkv, [2, 0, 3, 1, 4]))  # each [B, heads, L, d]
            scores = tf.matmul(q, k, transpose_b=True) + key_bias
            attended = tf.matmul(tf.nn.softmax(scores), v)
            attended = tf.reshape(tf.transpose(attended, [0, 2, 1, 3]), [batch * length, hidden])
            x = layer_norm(x + tf.cast(dense(attended, *layer["output"]), tf.float32),
                           layer["attention_norm"])
            inner = dense(x, *layer["intermediate"], gelu=True)
            x = layer_norm(x + tf.cast(dense(inner, *layer["ffn_output"]), tf.float32),
                           layer["ffn_norm"])
        mask = tf.cast(padding_mask, tf.float32)[:, :, None]
        summed = tf.reduce_sum(tf.reshape(x, [batch, length, hidden]) * mask, axis=1)
        pooled = summed / tf.maximum(tf.reduce_sum(mask, axis=1), 1e-9)
        return tf.math.l2_normalize(pooled, axis=-1)

    return embed


def _layer_arrays(weights, prefix: str, hidden: int, heads: int):
    """One transformer layer's float32 arrays: (kernel, bias) of the fused query/key/value
    product [hidden, 3 * hidden], the attention output, the feed-forward's two products, and
    (gamma, beta) of its two layer norms."""
    attention = prefix + "self_attention_layer/"
    scale = 1.0 / math.sqrt(hidden // heads)

    def projection(name, factor=1.0):
        return (weights[attention + name + "/kernel"].reshape(hidden, hidden) * factor,
                weights[attention + name + "/bias"].reshape(hidden) * factor)

    (wq, bq), (wk, bk), (wv, bv) = (projection("query", scale), projection("key"),
                                    projection("value"))
    return {
        "qkv": (np.concatenate([wq, wk, wv], axis=1), np.concatenate([bq, bk, bv])),
        "output": (weights[attention + "attention_output/kernel"].reshape(hidden, hidden),
                   weights[attention + "attention_output/bias"]),
        "attention_norm": (weights[prefix + "self_attention_layer_norm/gamma"],
                           weights[prefix + "self_attention_layer_norm/beta"]),
        "intermediate": (weights[prefix + "feedforward_intermediate_dense/kernel"],
                         weights[prefix + "feedforward_intermediate_dense/bias"]),
        "ffn_output": (weights[prefix + "feedforward_output_dense/kernel"],
                       weights[prefix + "feedforward_output_dense/bias"]),
        "ffn_norm": (weights[prefix + "feedforward_layer_norm/gamma"],
                     weights[prefix + "feedforward_layer_norm/beta"]),
    }
