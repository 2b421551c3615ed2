// The shapes of the server's JSON that the chat UI reads (the subset it uses; the server's TypeBox
// schemas in src/sessions/model.ts, src/platform/model.ts and src/openai/model.ts are the full truth).

/** usage.cost and a session's cost: exact nanoton and the same amount as a decimal TON string. */
export interface Cost {
  nanoton?: number | string;
  ton?: number | string;
}

export interface Usage {
  prompt_tokens?: number;
  completion_tokens?: number;
  total_tokens?: number;
  cost?: Cost;
}

export type Role = "system" | "developer" | "user" | "assistant" | "tool";

export interface Message {
  role: Role;
  /** A string from our server; anything else (another server's parts array) is shown as JSON. */
  content: unknown;
  reasoning_content?: string;
  created?: number;
  usage?: Usage;
  cost?: Cost;
}

export interface SessionInfo {
  id: string;
  title: string;
  model?: string | null;
  system_prompt?: string | null;
  created?: number;
  updated?: number;
  message_count?: number;
  usage?: Usage;
  cost?: Cost;
}

export interface SessionDetail extends SessionInfo {
  messages?: Message[];
}

/** The open conversation; `local` until the server has stored its first turn. */
export interface Conversation extends SessionInfo {
  messages: Message[];
  local: boolean;
}

export interface Balance {
  balance_ton: number;
  balance_nanoton: number | string;
  balance_usd?: number | null;
  reserved_nanoton?: number | string;
}

export interface Deposit {
  wallet: string | null;
  memo: string;
  instructions: string;
  link?: string;
}

export interface Registered {
  api_key: string;
}

export interface ModelEntry {
  id: string;
  type?: string;
}

export interface List<T> {
  data?: T[];
}

export interface Health {
  model_info?: { loaded?: boolean };
}

/** One parsed `data:` event of a streamed chat completion. */
export interface ChunkEvent {
  error?: { message?: string; code?: string | null };
  usage?: Usage | null;
  choices?: { delta?: { content?: string | null; reasoning_content?: string | null } }[];
}
