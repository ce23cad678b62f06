# The service's image: `binderhub-service serve` for the Deployment, and the builder image of
# the kubernetes executor's build pods (`jupyter-repo2docker` and git on PATH; a build pod's
# git credential is a file the service mounts for it, GIT_CONFIG_GLOBAL).
#
# Build with scripts/ensure-service-image.sh, which fills .wheelhouse/ with wheels of every
# dependency first so that the build needs no network (PIP_NO_INDEX=1). With a reachable
# package index, `mkdir -p .wheelhouse && docker build .` works too (an empty wheelhouse).
# BASE_IMAGE: any Debian bookworm image; the default is the public one, the tests pass their
# local copy (`--build-arg BASE_IMAGE=local/debian:bookworm`, as the script does).
ARG BASE_IMAGE=debian:bookworm-slim

# ---------------------------------------------------------------------------------------------
# build stage: a virtual environment with the package and its dependencies
# ---------------------------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-venv \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/*
ARG PIP_NO_INDEX=0
ENV PIP_NO_INDEX=${PIP_NO_INDEX} \
    PIP_FIND_LINKS=/wheelhouse \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
COPY .wheelhouse/ /wheelhouse/
RUN python3 -m venv /opt/binderhub-service
COPY pyproject.toml README.md /src/
COPY jobs /src/jobs
COPY webhook /src/webhook
# The build backend (hatchling) comes from the wheelhouse too; pip and setuptools are only
# needed here, so they leave the environment before it is copied. The kubernetes client's
# asyncio twin (kubernetes.aio, 70 MB) is unused: the executor uses the threaded client,
# which the import check below proves.
RUN /opt/binderhub-service/bin/pip install /src \
 && /opt/binderhub-service/bin/pip uninstall -y -q pip setuptools \
 && rm -rf /opt/binderhub-service/lib/python3.11/site-packages/kubernetes/aio \
 && /opt/binderhub-service/bin/python -c 'import jobs.executors.kubernetes, webhook.app' \
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
