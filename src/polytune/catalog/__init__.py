"""The model catalog: which base models a job may start from (models.py), the built-in tiny
models built offline on first use (tiny*.py, through the build cache of builds.py), and what
kind of image pipeline a model folder holds (pipelines.py).

It sits low in the layers: services, inference and the worker all read it, and it imports
nothing of polytune but the domain.
"""
