/* SPDX-License-Identifier: Apache-2.0 */
#include "counters.h"

#include <math.h>

#include <json-c/json.h>

#define EXPORT_COUNTER_ROW_(f, k, u, j, p, l, h)                                                                     \
        { .field = #f, .offset = offsetof(struct export_stats, f), .kind = COUNTER_KIND_##k, .unit = COUNTER_UNIT_##u, \
          .json = j, .prom = p, .label = l, .help = h },

const struct export_counter export_counters[] = { EXPORT_COUNTERS(EXPORT_COUNTER_ROW_) };
const size_t export_counters_count = sizeof export_counters / sizeof export_counters[0];

void export_stats_to_json(const struct export_stats *st, struct json_object *o) {
        for (size_t i = 0; i < export_counters_count; i++) {
                const struct export_counter *c = &export_counters[i];
                uint64_t v = export_counter_value(st, c);

                if (!c->json)
                        continue;
                switch (c->unit) {
                case COUNTER_UNIT_NS:
                        json_object_object_add(o, c->json, json_object_new_double((double) v / 1e9));
                        break;
                case COUNTER_UNIT_FLAG:
                        json_object_object_add(o, c->json, json_object_new_boolean(v != 0));
                        break;
                default:
                        json_object_object_add(o, c->json, json_object_new_int64((int64_t) v));
                        break;
                }
        }
        json_object_object_add(o, "hydration_pct", json_object_new_double(100.0 * export_stats_hydration(st)));
}

void export_stats_from_json(struct json_object *o, struct export_stats *ret) {
        *ret = (struct export_stats) { 0 };
        for (size_t i = 0; i < export_counters_count; i++) {
                const struct export_counter *c = &export_counters[i];
                uint64_t *v = (uint64_t *) ((char *) ret + c->offset);
                struct json_object *j;

                if (!c->json || !json_object_object_get_ex(o, c->json, &j) || !j)
                        continue;
                switch (c->unit) {
                case COUNTER_UNIT_NS: {
                        double s = json_object_get_double(j);
                        *v = s > 0 ? (uint64_t) llround(s * 1e9) : 0;
                        break;
                }
                case COUNTER_UNIT_FLAG:
                        *v = json_object_get_boolean(j);
                        break;
                default:
                        *v = (uint64_t) json_object_get_int64(j);
                        break;
                }
        }
}
