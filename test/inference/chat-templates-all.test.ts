// Every chat template in the llama.cpp bundle (models/templates/*.jinja) renders system, user,
// assistant, tools, assistant tool calls, tool results and reasoning through our path (ChatTemplate
// over the native chat library) exactly as llama.cpp's own llama-server renders the same request
// (POST /apply-template). llama-server's renders are kept as hashes in a fixture; with
// COCOON_RENDER_REFERENCE=1 and the from-source llama-server in the build cache, the test starts
// llama-server per template (minutes) and writes the fixture again.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from "bun:test";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadLlama, ChatTemplates, type LlamaModel } from "../../src/native/llama.ts";
import { ChatTemplate, ChatTemplateError, type ChatMessage, type RenderOptions, type ToolDefinition } from "../../src/inference/chat-template.ts";
import { ROOT, TINY_MODEL } from "../support/model.ts";

setDefaultTimeout(600_000);

const TEMPLATES = join(ROOT, "build", "cache", "llama.cpp-v0.5.0", "models", "templates");
const LLAMA_SERVER = join(ROOT, "build", "cache", "llama.cpp-build-cpu", "bin", "llama-server");
const FIXTURE = join(import.meta.dir, "fixtures", "llama-server-renders.json");

/** llama-server's result per template and conversation: the prompt's sha256, or its error. */
interface Reference {
  /** When llama-server rendered them (Unix seconds): our renders print the same date. */
  generatedAt: number;
  renders: Record<string, ({ sha256: string; length: number } | { error: string })[]>;
}

const weather: ToolDefinition = {
  type: "function",
  function: {
    name: "get_weather",
    description: "Weather for a city",
    parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  },
};
const time: ToolDefinition = {
  type: "function",
  function: { name: "get_time", description: "Local time", parameters: { type: "object", properties: { tz: { type: "string" } }, required: ["tz"] } },
};

interface Conversation {
  name: string;
  messages: ChatMessage[];
  options: RenderOptions;
}

const CONVERSATIONS: Conversation[] = [
  {
    name: "system, user and assistant turns",
    messages: [
      { role: "system", content: "You are terse." },
      { role: "user", content: "Hi" },
      { role: "assistant", content: "Hello." },
      { role: "user", content: "What is 2+2?" },
    ],
    options: {},
  },
  {
    name: "tools offered",
    messages: [
      { role: "system", content: "You can look things up." },
      { role: "user", content: "Weather in Paris?" },
    ],
    options: { tools: [weather, time] },
  },
  {
    name: "assistant tool calls and tool results",
    messages: [
      { role: "user", content: "Weather and time in Paris?" },
      {
        role: "assistant",
        content: null,
        tool_calls: [
          { id: "call_a1b2c3d4e", type: "function", function: { name: "get_weather", arguments: '{"city": "Paris"}' } },
          { id: "call_f5g6h7i8j", type: "function", function: { name: "get_time", arguments: '{"tz": "Europe/Paris"}' } },
        ],
      },
      { role: "tool", tool_call_id: "call_a1b2c3d4e", content: "18C, clear" },
      { role: "tool", tool_call_id: "call_f5g6h7i8j", content: "14:05" },
    ],
    options: { tools: [weather, time] },
  },
  {
    name: "reasoning in an earlier assistant turn",
    messages: [
      { role: "user", content: "Is 7 prime?" },
      { role: "assistant", content: "Yes.", reasoning_content: "7 has no divisors but 1 and 7." },
      { role: "user", content: "And 9?" },
    ],
    options: {},
  },
  {
    name: "thinking switched off",
    messages: [{ role: "user", content: "Quick answer: 3*3?" }],
    options: { enableThinking: false },
  },
];

/** What llama-server receives for the same render: the OpenAI body /apply-template reads. */
function serverBody(c: Conversation): Record<string, unknown> {
  const body: Record<string, unknown> = { messages: c.messages.map((m) => ({ ...m, content: m.content ?? "" })) };
  if (c.options.tools) body.tools = c.options.tools;
  if (c.options.enableThinking !== undefined) body.chat_template_kwargs = { enable_thinking: c.options.enableThinking };
  return body;
}

type Rendered = { prompt: string } | { error: string };

const files = existsSync(TEMPLATES) ? readdirSync(TEMPLATES).filter((f) => f.endsWith(".jinja")).sort() : [];
const regenerate = process.env.COCOON_RENDER_REFERENCE === "1" && existsSync(LLAMA_SERVER);
const sha256 = (s: string) => new Bun.CryptoHasher("sha256").update(s).digest("hex");
let model: LlamaModel;

beforeAll(() => {
  model = loadLlama().loadModel(TINY_MODEL);
});
afterAll(() => model?.dispose());

function ours(file: string, c: Conversation, now: number): Rendered {
  let t: ChatTemplate;
  try {
    t = new ChatTemplate(ChatTemplates.create(loadLlama().chat, model.handle, readFileSync(join(TEMPLATES, file), "utf8")));
  } catch (err) {
    return { error: String(err) };
  }
  try {
    return { prompt: t.render(c.messages, { ...c.options, now }).prompt };
  } catch (err) {
    if (err instanceof ChatTemplateError) return { error: err.message };
    throw err;
  } finally {
    t.dispose();
  }
}

/** Starts llama.cpp's llama-server with one template, renders every conversation, stops it (by pid). */
async function theirs(file: string, attempt = 0): Promise<Rendered[]> {
  const port = 20000 + Math.floor(Math.random() * 20000);
  const proc = Bun.spawn(
    [LLAMA_SERVER, "-m", TINY_MODEL, "--chat-template-file", join(TEMPLATES, file), "--host", "127.0.0.1", "--port", String(port), "-c", "512", "-np", "1", "-t", "1", "--no-webui"],
    { stdout: "ignore", stderr: "pipe", env: { ...process.env, LD_LIBRARY_PATH: join(LLAMA_SERVER, "..") } },
  );
  try {
    const base = `http://127.0.0.1:${port}`;
    for (let i = 0; ; i++) {
      if (proc.exitCode !== null) {
        // A port taken meanwhile, or a start that failed under load: another port, twice more.
        if (attempt < 2) return theirs(file, attempt + 1);
        const why = (await new Response(proc.stderr).text()).trim().split("\n").slice(-2).join("; ");
        return CONVERSATIONS.map(() => ({ error: `llama-server exited (${proc.exitCode}): ${why}` }));
      }
      const ok = await fetch(`${base}/health`).then((r) => r.ok, () => false);
      if (ok) break;
      if (i > 600) throw new Error(`llama-server did not start for ${file}`);
      await Bun.sleep(50);
    }
    const out: Rendered[] = [];
    for (const c of CONVERSATIONS) {
      const r = await fetch(`${base}/apply-template`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(serverBody(c)) });
      const json = (await r.json()) as { prompt?: string; error?: { message: string } };
      out.push(r.ok && typeof json.prompt === "string" ? { prompt: json.prompt } : { error: json.error?.message ?? `status ${r.status}` });
    }
    return out;
  } finally {
    proc.kill();
    await proc.exited;
  }
}

describe("every template in the llama.cpp bundle", () => {
  test("the bundle carries its templates", () => {
    expect(files.length).toBeGreaterThanOrEqual(70);
  });

  test("each renders every conversation through our path, as llama-server renders it", async () => {
    let reference: Reference;
    if (regenerate) {
      reference = { generatedAt: Math.floor(Date.now() / 1000), renders: {} };
      for (const file of files) {
        reference.renders[file] = (await theirs(file)).map((r) => ("prompt" in r ? { sha256: sha256(r.prompt), length: r.prompt.length } : { error: r.error.slice(0, 300) }));
      }
      writeFileSync(FIXTURE, `${JSON.stringify(reference, null, 1)}\n`);
    } else {
      reference = JSON.parse(readFileSync(FIXTURE, "utf8")) as Reference;
    }
    expect(Object.keys(reference.renders).sort()).toEqual(files);
    const refused: string[] = [];
    const mismatches: string[] = [];
    for (const file of files) {
      CONVERSATIONS.forEach((c, i) => {
        const name = `${file} / ${c.name}`;
        const m = ours(file, c, reference.generatedAt);
        const r = reference.renders[file]![i]!;
        if ("error" in m) refused.push(`${name}: ${m.error.split("\n")[0]!.slice(0, 160)}`);
        // Both must agree: the same prompt, or both refuse (llama.cpp cannot render that conversation).
        if ("prompt" in m && "sha256" in r) {
          if (sha256(m.prompt) !== r.sha256) mismatches.push(`${name}: prompt differs from llama-server's (${m.prompt.length} vs ${r.length} chars)`);
        } else if ("prompt" in m !== "sha256" in r) {
          mismatches.push(`${name}: ours ${"prompt" in m ? "rendered" : "failed"}, llama-server ${"sha256" in r ? "rendered" : `failed (${r.error})`}`);
        }
      });
    }
    // The few conversations llama.cpp itself cannot render for a template, named with its reason.
    if (refused.length) console.log(`llama.cpp cannot render (llama-server refuses the same):\n  ${refused.join("\n  ")}`);
    expect(mismatches).toEqual([]);
    const plainFailures = refused.filter((l) => l.includes("/ system, user and assistant turns:"));
    expect(plainFailures).toEqual([]);
  });
});
