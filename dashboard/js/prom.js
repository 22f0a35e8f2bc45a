// Reads the Prometheus text of /metrics: samples, then requests and latency by route.

// [{name, labels: {k: v}, value}] of every sample line (comments skipped).
export function parseProm(text) {
  const out = [];
  const line = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/;
  const label = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;
  for (const l of text.split("\n")) {
    if (!l || l[0] === "#") continue;
    const m = line.exec(l);
    if (!m) continue;
    const labels = {};
    if (m[3]) for (const lm of m[3].matchAll(label)) labels[lm[1]] = lm[2].replace(/\\(.)/g, "$1");
    const v = m[4] === "+Inf" ? Infinity : Number(m[4]);
    out.push({ name: m[1], labels, value: v });
  }
  return out;
}

// The upper bound of the bucket holding quantile q of a histogram ([{le, count}], cumulative).
function quantile(buckets, q) {
  const total = buckets.length ? buckets[buckets.length - 1].count : 0;
  if (!total) return null;
  for (const b of buckets) if (b.count >= q * total) return b.le;
  return Infinity;
}

// {total, byStatus: {code: n}, routes: [{route, requests, errors, meanMs, p50Ms, p95Ms}]}
export function requestSummary(samples) {
  const routes = new Map();
  const get = (r) => {
    if (!routes.has(r)) routes.set(r, { route: r, requests: 0, errors: 0, sum: 0, count: 0, buckets: [] });
    return routes.get(r);
  };
  const byStatus = {};
  let total = 0;
  for (const s of samples) {
    if (s.name === "cultivate_ml_requests_total") {
      const r = get(s.labels.route || "?");
      r.requests += s.value;
      total += s.value;
      const st = s.labels.status || "?";
      byStatus[st] = (byStatus[st] || 0) + s.value;
      if (Number(st) >= 500) r.errors += s.value;
    } else if (s.name === "cultivate_ml_request_duration_seconds_bucket") {
      get(s.labels.route || "?").buckets.push({ le: s.labels.le === "+Inf" ? Infinity : Number(s.labels.le),
                                                count: s.value });
    } else if (s.name === "cultivate_ml_request_duration_seconds_sum") {
      get(s.labels.route || "?").sum = s.value;
    } else if (s.name === "cultivate_ml_request_duration_seconds_count") {
      get(s.labels.route || "?").count = s.value;
    }
  }
  const list = [...routes.values()].map((r) => {
    r.buckets.sort((a, b) => a.le - b.le);
    const p50 = quantile(r.buckets, 0.5);
    const p95 = quantile(r.buckets, 0.95);
    return { route: r.route, requests: r.requests, errors: r.errors,
             meanMs: r.count ? (1000 * r.sum) / r.count : null,
             p50Ms: p50 === null ? null : 1000 * p50, p95Ms: p95 === null ? null : 1000 * p95 };
  });
  list.sort((a, b) => b.requests - a.requests);
  return { total, byStatus, routes: list };
}
