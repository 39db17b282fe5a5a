// @fal-ai/client, unchanged, against `wanmock serve --tls` (tests/clients/test_fal_js.py).
// The client hard-codes https://queue.fal.run, https://fal.run and https://rest.fal.ai and has
// no host variable: its documented requestMiddleware points it at the fake (the run host and
// the REST host sit under /fal.run and /rest.fal.ai, the queue at the root). Trust comes from
// NODE_EXTRA_CA_CERTS; the key from FAL_KEY. Prints one JSON line of what it saw.
import { createFalClient, ValidationError } from "@fal-ai/client";

const base = process.argv[2];
const HOSTS = [
  ["https://queue.fal.run/", `${base}/`],
  ["https://fal.run/", `${base}/fal.run/`],
  ["https://rest.fal.ai/", `${base}/rest.fal.ai/`],
];
const fal = createFalClient({
  credentials: process.env.FAL_KEY,
  requestMiddleware: async (request) => {
    for (const [real, fake] of HOSTS) {
      if (request.url.startsWith(real)) {
        return { ...request, url: fake + request.url.slice(real.length) };
      }
    }
    return request;
  },
});
const APP = "wan/v2.6/text-to-video";
const out = {};

const updates = [];
const done = await fal.subscribe(APP, {
  input: { prompt: "a fox", duration: "5" },
  logs: true,
  onQueueUpdate: (update) => updates.push(update),
});
out.subscribe = [done.data.video.content_type, typeof done.requestId,
  updates.map((u) => u.status).at(-1), updates.some((u) => (u.logs || []).length > 0)];

const { request_id } = await fal.queue.submit(APP, { input: { prompt: "a fox" } });
const streamed = await fal.queue.subscribeToStatus(APP, {
  requestId: request_id, mode: "streaming", logs: true,
});
const result = await fal.queue.result(APP, { requestId: request_id });
out.streaming = [streamed.status, result.requestId === request_id, result.data.seed >= 0];

const stuck = await fal.queue.submit(APP, {
  input: { prompt: "a fox" }, headers: { "X-Wanmock-Scenario": "stuck; seconds=600" },
});
await fal.queue.cancel(APP, { requestId: stuck.request_id });
const cancelled = await fal.queue.status(APP, { requestId: stuck.request_id });
out.cancel = [cancelled.status, cancelled.error_type];

const ran = await fal.run(APP, { input: { prompt: "a fox", resolution: "720p" } });
out.run = ran.data.video.width;

try {
  await fal.subscribe(APP, { input: { prompt: "a fox", duration: "7" } });
  out.invalid = null;
} catch (error) {
  out.invalid = [error instanceof ValidationError, error.status,
    error.fieldErrors.map((e) => `${e.loc.join(".")}:${e.type}`)];
}
console.log(JSON.stringify(out));
