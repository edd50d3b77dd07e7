"""Image-generation fine-tuning on diffusers pipelines (the `image_generation` recipe's parts):
the family a pipeline belongs to, each family's step (flux.py, flux2.py, sd3.py, qwenimage.py, zimage.py:
flow matching, sharing flow_matching.py; unet.py, sdxl.py: noise or velocity prediction),
timestep sampling, cached latents and prompt embeddings, sampling."""
