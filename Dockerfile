# The service's image: `binderhub-service serve`, the Helm chart's Deployment. Build pods run
# the builder image (images/repo2docker/Dockerfile).
#
# From a clean clone, with nothing prepared (pip installs from the package index):
#
#   docker build .
#
# Build arguments:
#   BASE_IMAGE     any Debian bookworm image: the default is Docker Hub's debian:bookworm-slim;
#                  the tests pass their local copy, local/debian:bookworm
#   VERSION        the release's version: the package's version (PEP 440, e.g. 0.2.0)
#   BUILDER_IMAGE  the builder image released with it, the service's default
#                  kubernetes.builder_image (jobs/release.py reads it)
# Behind a proxy that intercepts HTTPS, give its CA bundle as a BuildKit secret:
#   docker build --secret id=ca-certificates,src=/etc/ssl/certs/ca-certificates.crt .
# `make release` builds and pushes it with the builder image (docs/helm.md).
ARG BASE_IMAGE=debian:bookworm-slim

# ---------------------------------------------------------------------------------------------
# build stage: a virtual environment with the package and its dependencies
# ---------------------------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        python3 python3-venv ca-certificates \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/*
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python3 -m venv /opt/binderhub-service
COPY pyproject.toml README.md /src/
COPY jobs /src/jobs
COPY webhook /src/webhook
# builder/: the buildkit engine and the content providers of our own (the local executor
# writes a provider's source into a record build's repo2docker configuration)
COPY builder /src/builder
RUN --mount=type=secret,id=ca-certificates \
    if [ -s /run/secrets/ca-certificates ]; then export PIP_CERT=/run/secrets/ca-certificates; fi \
 && /opt/binderhub-service/bin/pip install /src /src/builder
# The release's stamp, after the dependencies (a new VERSION reinstalls only the package):
# its version, and the builder image it was released with. pip and setuptools are only needed
# here, so they leave the environment before it is copied. The kubernetes client's asyncio
# twin (kubernetes.aio, 70 MB) is unused: the executor uses the threaded client, which the
# import check below proves.
ARG VERSION=""
ARG BUILDER_IMAGE=""
RUN --mount=type=secret,id=ca-certificates \
    if [ -s /run/secrets/ca-certificates ]; then export PIP_CERT=/run/secrets/ca-certificates; fi \
 && if [ -n "$VERSION" ]; then \
        sed -i "s/^version = .*/version = \"$VERSION\"/" /src/pyproject.toml \
        && /opt/binderhub-service/bin/pip install --no-deps --force-reinstall /src; \
    fi \
 && mkdir -p /opt/binderhub-service/share/binderhub-service \
 && python3 -c 'import json, sys; json.dump({"version": sys.argv[1], "builder_image": sys.argv[2]}, sys.stdout)' \
        "$VERSION" "$BUILDER_IMAGE" >/opt/binderhub-service/share/binderhub-service/release.json \
 && /opt/binderhub-service/bin/pip uninstall -y -q pip setuptools \
 && rm -rf /opt/binderhub-service/lib/python3.11/site-packages/kubernetes/aio \
 && /opt/binderhub-service/bin/python -c 'import jobs.executors.kubernetes.executor, webhook.app, binderhub_service_builder.contentproviders.dataverse, binderhub_service_builder.contentproviders.unversioned' \
 && /opt/binderhub-service/bin/jupyter-repo2docker --version >/dev/null \
 && /opt/binderhub-service/bin/binderhub-service --help >/dev/null

# ---------------------------------------------------------------------------------------------
# runtime stage: python3 and git from Debian, the environment from the build stage
# ---------------------------------------------------------------------------------------------
FROM ${BASE_IMAGE}
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        python3 git ca-certificates \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/apt /var/log/dpkg.log \
 && useradd --uid 1000 --user-group --create-home --shell /usr/sbin/nologin binderhub \
 && install -d -o 1000 -g 1000 /var/lib/binderhub-service
COPY --from=build /opt/binderhub-service /opt/binderhub-service
ENV PATH=/opt/binderhub-service/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# the default state_path (binderhub-service.sqlite) is relative: it lands here
WORKDIR /var/lib/binderhub-service
USER 1000:1000
EXPOSE 8080
CMD ["binderhub-service", "serve", "--listen", "0.0.0.0:8080"]
LABEL org.opencontainers.image.title="binderhub-service" \
      org.opencontainers.image.description="Build Jupyter images from git repositories with repo2docker" \
      org.opencontainers.image.licenses="BSD-3-Clause"
ARG VERSION=""
LABEL org.opencontainers.image.version="${VERSION}"
