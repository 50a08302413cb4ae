"""Foundations every stage uses: the profile switch and configs, device and seeding, repo-rooted paths, atomic
storage, sparse kernels, network blocks, torch.distributed."""
