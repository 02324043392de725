"""tf_keras layers of CCFRec (Keras 2, as TFRS requires), keras-hub style: one layer per module,
named for the layer (`code_guided_fusion.CodeGuidedFusion`), each with `get_config` holding every
constructor argument. The functions the layers share (`gelu`, `feed_forward`, `seeded_dropout`,
`codes_to_tokens`) live in modules of their own."""
