// The Vercel AI SDK (`ai` + `@ai-sdk/alibaba`) driven unchanged against a wanmock fake.
//
// Usage: node ai_sdk_flows.mjs BASE_URL OUT_DIR
// Runs every flow tests/clients/test_ai_sdk.py asserts on, in one Node process (one start-up
// per test module), and prints one JSON object: {flow name: outcome}. A video the SDK downloads
// is written to OUT_DIR/<flow>.mp4 for the Python side to decode.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createAlibaba } from '@ai-sdk/alibaba';
import { experimental_generateVideo as generateVideo } from 'ai';

const [baseURL, outDir] = process.argv.slice(2);
const alibaba = createAlibaba({ apiKey: 'sk-wanmock-ai-sdk-0123456789', videoBaseURL: baseURL });
const fast = { alibaba: { pollIntervalMs: 20, pollTimeoutMs: 20000 } };

// The AI SDK's documented way past its download guard (generate-video "download" option): the
// default download refuses loopback and private addresses, which is where a local fake lives.
const loopbackDownload = async ({ url, abortSignal }) => {
  const response = await fetch(url, { signal: abortSignal });
  if (!response.ok) throw new Error(`download failed: ${response.status}`);
  return {
    data: new Uint8Array(await response.arrayBuffer()),
    mediaType: response.headers.get('content-type') ?? undefined,
  };
};

async function run(name, call) {
  try {
    const { videos, providerMetadata, warnings } = await call();
    const path = join(outDir, `${name}.mp4`);
    writeFileSync(path, videos[0].uint8Array);
    return { ok: true, path, mediaType: videos[0].mediaType, metadata: providerMetadata.alibaba,
             warnings };
  } catch (error) {
    return { ok: false, name: error.name, message: String(error.message),
             cause: error.cause ? String(error.cause.message ?? error.cause) : null };
  }
}

const results = {
  // Text to video on the newest model, as a new user writes it.
  wan3_text: await run('wan3_text', () => generateVideo({
    model: alibaba.video('wan3.0-video'), prompt: 'a cat on a skateboard',
    providerOptions: fast, download: loopbackDownload })),
  // First frame (an inline image) at 720P, 4 s, 9:16, silent.
  wan3_first_frame: await run('wan3_first_frame', () => generateVideo({
    model: alibaba.video('wan3.0-video'),
    prompt: { image: process.env.WANMOCK_FRAME, text: 'the cat jumps' },
    resolution: '720x1280', duration: 4, generateAudio: false,
    providerOptions: fast, download: loopbackDownload })),
  // A legacy-protocol model (size W*H).
  wan26_text: await run('wan26_text', () => generateVideo({
    model: alibaba.video('wan2.6-t2v'), prompt: 'a dog', resolution: '1280x720', duration: 5,
    providerOptions: fast, download: loopbackDownload })),
  // The task fails (a wanmock job scenario, sent as an extra header).
  failed: await run('failed', () => generateVideo({
    model: alibaba.video('wan3.0-video'), prompt: 'a cat', maxRetries: 0,
    headers: { 'X-Wanmock-Scenario': 'fail; kind=moderation' },
    providerOptions: fast, download: loopbackDownload })),
  // Without the download option: the SDK's guard refuses the fake's loopback video URL.
  guarded: await run('guarded', () => generateVideo({
    model: alibaba.video('wan3.0-video'), prompt: 'a cat', maxRetries: 0,
    providerOptions: fast })),
};
process.stdout.write(JSON.stringify(results));
