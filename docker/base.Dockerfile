# The offline base image built by `inv base`: one Debian root file system per
# platform (debootstrap --variant=minbase, see ci/build.py), nothing else.
# The build context is the directory holding rootfs-<arch>.tar.
FROM scratch
ARG TARGETARCH
ARG TARGETVARIANT
ADD rootfs-${TARGETARCH}${TARGETVARIANT}.tar /
ENV LANG=C.UTF-8
CMD ["/bin/bash"]
