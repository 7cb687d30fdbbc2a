// The klstore TypeScript client.

export * from "./klstore-client.ts";
