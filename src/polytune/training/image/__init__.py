"""Image-generation fine-tuning on diffusers pipelines (the `image_generation` recipe's parts):
the family a pipeline belongs to, each family's step (flux.py: flow matching; unet.py: noise or
velocity prediction), timestep sampling, cached latents and prompt embeddings, sampling."""
