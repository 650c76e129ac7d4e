#!/usr/bin/env bash
# Referrers on docker-registry 2.8 (no referrers API): the tag-schema
# fallback is kept by manifest_put and read by referrers_get. The checks
# are in tests/unit/test-registry-referrers.c, run here with a registry.
. "$TESTS_DIR/functions.sh"
requires docker-registry curl
prog=$BUILD_DIR/tests/test-registry-referrers
[ -x "$prog" ] || skip "$prog not built"
start_registry reg
HOCUS_TEST_REGISTRY=$REGISTRY timeout 120 "$prog" || fail "referrers checks failed"
curl -fsS "http://$REGISTRY/v2/refs/img/tags/list" | grep -q '"sha256-[0-9a-f]\{64\}"' ||
        fail "no referrers tag in the repository"
echo ok
