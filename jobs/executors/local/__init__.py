"""The local executor: builds as repo2docker subprocesses on this machine.

``executor``: ``LocalExecutor``; ``workdirs``: each build's working directory;
``build_config``: what a build gets from the service (its environment, its credential
files). Nothing is imported here; each module is imported by its name.
"""
