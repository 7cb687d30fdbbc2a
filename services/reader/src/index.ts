// The klstore reader.

export * from "./reader-server.ts";
