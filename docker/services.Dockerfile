# The services of docker/compose.yml (PostgreSQL, Redis, nginx) from Debian's own packages on
# the project's base image, for machines that cannot pull the public images the recipe names
# (`inv compose-images`, bake group `services`). Native platform only: apt runs in the build.
# Each image keeps the interface of its public counterpart that the recipe uses: the postgres
# image's POSTGRES_USER/PASSWORD/DB and PGDATA, redis-server reachable from other containers,
# and nginx's /etc/nginx/templates/*.template filled in from the environment.
#
# APT_MIRROR (from the host's apt configuration, passed by `inv compose-images`): the Debian
# mirror to install from; empty keeps the base image's own sources. A CA bundle for HTTPS
# mirrors behind a TLS-intercepting proxy comes as the BuildKit secret extra_ca.

ARG BASE_IMAGE

FROM ${BASE_IMAGE} AS apt-base
ARG APT_MIRROR=
ENV LANG=C.UTF-8
# No service starts while its package installs; apt reads the mirror given, if any.
RUN printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod 0755 /usr/sbin/policy-rc.d \
 && if [ -n "$APT_MIRROR" ]; then \
      . /etc/os-release && rm -f /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list \
      && echo "deb $APT_MIRROR $VERSION_CODENAME main" > /etc/apt/sources.list; \
    fi
COPY docker/services/apt-install /usr/local/sbin/

FROM apt-base AS postgres
# Debian's packaging would create a cluster of its own; the entrypoint makes the only one.
RUN --mount=type=secret,id=extra_ca \
    mkdir -p /etc/postgresql-common/createcluster.d \
 && echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.d/clickvote.conf \
 && apt-install postgresql \
 && ln -s "$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)" /usr/local/pgbin \
 && mkdir -p /var/lib/postgresql/data /var/run/postgresql \
 && chown -R postgres:postgres /var/lib/postgresql /var/run/postgresql \
 && chmod 0700 /var/lib/postgresql/data
ENV PATH=/usr/local/pgbin:$PATH PGDATA=/var/lib/postgresql/data
COPY docker/services/postgres-entrypoint /usr/local/bin/
VOLUME /var/lib/postgresql/data
USER postgres
EXPOSE 5432
STOPSIGNAL SIGINT
ENTRYPOINT ["postgres-entrypoint"]
CMD ["postgres"]

FROM apt-base AS redis
RUN --mount=type=secret,id=extra_ca \
    apt-install redis-server \
 && mkdir -p /data && chown redis:redis /data
COPY docker/services/redis-entrypoint /usr/local/bin/
VOLUME /data
WORKDIR /data
USER redis
EXPOSE 6379
ENTRYPOINT ["redis-entrypoint"]
CMD ["redis-server"]

FROM apt-base AS nginx
# gettext-base: envsubst, for the templates.
RUN --mount=type=secret,id=extra_ca \
    apt-install nginx gettext-base \
 && rm -f /etc/nginx/sites-enabled/default \
 && mkdir -p /etc/nginx/templates \
 && ln -sf /dev/stdout /var/log/nginx/access.log \
 && ln -sf /dev/stderr /var/log/nginx/error.log
COPY docker/services/nginx-entrypoint /usr/local/bin/
EXPOSE 80
STOPSIGNAL SIGQUIT
ENTRYPOINT ["nginx-entrypoint"]
CMD ["nginx", "-g", "daemon off;"]
