# ClickVote images. This file is the single source of truth for the platform
# list, the image names and the Python version: tasks.py, noxfile.py and CI
# read these variables (ci/project.py) instead of repeating them.

variable "PLATFORMS" {
  default = ["linux/amd64", "linux/arm64", "linux/arm/v7"]
}

variable "IMAGE" {
  default = "clickvote"
}

variable "TEST_IMAGE" {
  default = "clickvote-test"
}

variable "PYTHON_VERSION" {
  default = "3.11"
}
