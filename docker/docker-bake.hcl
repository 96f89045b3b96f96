# ClickVote images. This file is the single source of truth for the platform
# list, the image names and the Python version: tasks/, noxfile.py and CI
# read them (ci/project.py, through `docker buildx bake --print app test base`)
# instead of repeating them. The facts about each platform are in platforms.toml.
# docker-bake.print.json is that --print answer for the defaults, read where no
# buildx is installed (the test image, a fresh host): `python3 -m ci.project`
# writes it again after a change here.
#
# Build through `inv build` (it picks the base image, sets the label values
# and checks the host first); plain `docker buildx bake -f docker/docker-bake.hcl`
# from the repository root works too.

# platforms.toml knows linux/arm/v5, linux/ppc64le and linux/s390x too; they are left out
# while the Debian mirror the offline base is built from serves their package indexes but
# not their packages.
variable "PLATFORMS" {
  default = [
    "linux/amd64",
    "linux/arm64",
    "linux/arm/v7",
    "linux/386",
    "linux/riscv64"
  ]
}

variable "IMAGE" {
  default = "clickvote"
}

variable "TEST_IMAGE" {
  default = "clickvote-test"
}

# The Python of the base image (Debian 13's python3; the registry base's tag).
variable "PYTHON_VERSION" {
  default = "3.13"
}

# The image everything is built on. The official slim image by default; `inv
# build` switches to LOCAL_BASE_IMAGE (built offline by `inv base`) when the
# registry cannot be reached.
variable "BASE_IMAGE" {
  default = "python:${PYTHON_VERSION}-slim-${BASE_SUITE}"
}

variable "LOCAL_BASE_IMAGE" {
  default = "clickvote-base:trixie"
}

# Debian suite of LOCAL_BASE_IMAGE.
variable "BASE_SUITE" {
  default = "trixie"
}

variable "TAG" {
  default = "latest"
}

# Newest glibc of any base image: binary wheels up to manylinux_2_<this> are used.
variable "MANYLINUX_GLIBC_MINOR" {
  default = "41"
}

# Debian packages the image needs at run time (libpq for PostgreSQL storage),
# resolved for each target platform natively and copied in.
variable "SYSTEM_PACKAGES" {
  default = "libpq5"
}

# A CA bundle for pip inside the build (TLS-intercepting proxies). Passed as a
# BuildKit secret, never stored in a layer. Empty: none.
variable "EXTRA_CA" {
  default = "/etc/ssl/certs/ca-certificates.crt"
}

# OCI label values (inv build fills them in from git and the package).
variable "VERSION" {
  default = ""
}

variable "REVISION" {
  default = ""
}

variable "SOURCE" {
  default = ""
}

variable "CREATED" {
  default = ""
}

target "_common" {
  context    = "."
  dockerfile = "docker/Dockerfile"
  args = {
    BASE_IMAGE            = BASE_IMAGE
    PYTHON_VERSION        = PYTHON_VERSION
    MANYLINUX_GLIBC_MINOR = MANYLINUX_GLIBC_MINOR
    SYSTEM_PACKAGES       = SYSTEM_PACKAGES
    VERSION               = VERSION
    REVISION              = REVISION
    SOURCE                = SOURCE
    CREATED               = CREATED
  }
  secret = EXTRA_CA != "" ? ["id=extra_ca,src=${EXTRA_CA}"] : []
}

target "app" {
  inherits  = ["_common"]
  target    = "app"
  platforms = PLATFORMS
  tags      = ["${IMAGE}:${TAG}"]
}

target "test" {
  inherits  = ["_common"]
  target    = "test"
  platforms = PLATFORMS
  tags      = ["${TEST_IMAGE}:${TAG}"]
}

# Check-only: ruff inside a (native) build; nothing is exported.
target "lint" {
  inherits = ["_common"]
  target   = "lint"
  output   = ["type=cacheonly"]
}

# The offline base image (LOCAL_BASE_IMAGE), built by `inv base` from debootstrap root file
# systems: its context is their work directory (ci/build.py), so build it through `inv base`.
target "base" {
  context    = "."
  dockerfile = "docker/base.Dockerfile"
  platforms  = PLATFORMS
  tags       = [LOCAL_BASE_IMAGE]
  args = {
    BASE_SUITE = BASE_SUITE
  }
}

group "default" {
  targets = ["app"]
}

group "all" {
  targets = ["app", "test"]
}

group "validate" {
  targets = ["lint"]
}

# --------------------------------------------------------------------- compose services
# PostgreSQL, Redis and nginx for docker/compose.yml from Debian's packages on the base
# image (docker/services.Dockerfile), for machines that cannot pull the public images:
# `inv compose-images` builds the group `services` for the native platform only and
# passes APT_MIRROR, the Debian mirror of the host's own apt configuration.
variable "APT_MIRROR" {
  default = ""
}

target "_service" {
  context    = "."
  dockerfile = "docker/services.Dockerfile"
  args = {
    BASE_IMAGE = BASE_IMAGE
    APT_MIRROR = APT_MIRROR
  }
  secret = EXTRA_CA != "" ? ["id=extra_ca,src=${EXTRA_CA}"] : []
}

target "service-postgres" {
  inherits = ["_service"]
  target   = "postgres"
  tags     = ["${IMAGE}-postgres:${TAG}"]
}

target "service-redis" {
  inherits = ["_service"]
  target   = "redis"
  tags     = ["${IMAGE}-redis:${TAG}"]
}

target "service-nginx" {
  inherits = ["_service"]
  target   = "nginx"
  tags     = ["${IMAGE}-nginx:${TAG}"]
}

group "services" {
  targets = ["service-postgres", "service-redis", "service-nginx"]
}
