"""The TFX pipeline that builds, evaluates and pushes CCFRec models."""
