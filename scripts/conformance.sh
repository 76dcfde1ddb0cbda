#!/usr/bin/env bash
# Official MCP conformance suite (@modelcontextprotocol/conformance 0.1.16, every 2025-11-25 server scenario)
# against the SDK fixture server directly, then through the gateway (anonymous MCP Service, and authenticated
# MCP Service behind a bearer-adding loopback shim), then 0.2 alpha and a federated Service (--extended). Prints the pass counts of all three runs and exits
# non-zero when a gateway run passes less than the direct run. See docs/conformance.md.
set -euo pipefail
cd "$(dirname "$0")/.."
# The suite needs Node >= 22 (fs.globSync); the product stays on Node 20. npx brings Node 22 from the npm registry.
NODE22="${NODE22:-$(npx -y node@22 -p process.execPath)}"
export NODE22
node --conditions=octelium-source --import tsx packages/cluster/test/fixtures/mcp/conformance-harness.ts
# Issue 16: 0.2 alpha (direct vs gateway) and 0.1.16 through a federated Service with the fixture as its one member.
exec node --conditions=octelium-source --import tsx packages/cluster/test/fixtures/mcp/conformance-harness.ts --extended
