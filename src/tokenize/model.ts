// TypeBox schemas of llama-server's /tokenize and /detokenize, field names as llama-server has them,
// plus an optional `model` (the first served model by default).
import { t, type Static } from "elysia";
import { Type } from "@sinclair/typebox";

const ModelField = t.Optional(t.String({ description: "Model id; defaults to the first served model." }));

export const TokenizeRequest = t.Object(
  {
    model: ModelField,
    content: t.String({ maxLength: 1 << 22, description: "The text to tokenize." }),
    add_special: t.Optional(t.Boolean({ description: "Add BOS (and EOS) as the model's tokenizer config says. Defaults to false." })),
    parse_special: t.Optional(t.Boolean({ description: "Read special-token text (e.g. `<|im_start|>`) as those tokens. Defaults to true." })),
    with_pieces: t.Optional(t.Boolean({ description: "Return `{id, piece}` objects instead of bare ids. Defaults to false." })),
  },
  { examples: [{ content: "Hello world", with_pieces: true }] },
);
export type TokenizeRequest = Static<typeof TokenizeRequest>;

const Piece = t.Object({
  id: Type.Integer(),
  piece: t.Union([t.String(), t.Array(Type.Integer())], { description: "The token's text, or its bytes when they are not valid UTF-8 on their own." }),
});

export const TokenizeResponse = t.Object({ tokens: t.Union([t.Array(Type.Integer()), t.Array(Piece)]) });
export type TokenizeResponse = Static<typeof TokenizeResponse>;

export const DetokenizeRequest = t.Object(
  {
    model: ModelField,
    tokens: t.Array(Type.Integer({ minimum: 0 }), { maxItems: 1 << 20, description: "Token ids." }),
  },
  { examples: [{ tokens: [9707, 1879] }] },
);
export type DetokenizeRequest = Static<typeof DetokenizeRequest>;

export const DetokenizeResponse = t.Object({ content: t.String() });
export type DetokenizeResponse = Static<typeof DetokenizeResponse>;
