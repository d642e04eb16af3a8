import TollgateCore

/// The plans and networks views, and cordon/uncordon.
extension AdminAPI {
    func listPlans(_ input: Operations.listPlans.Input) async throws -> Operations.listPlans.Output {
        let items = fleet.plans().sorted { $0.name < $1.name }.map { plan in
            Components.Schemas.Plan(
                name: plan.name, cu_per_second: plan.cuPerSecond, requests_per_second: plan.requestsPerSecond, monthly_cu: plan.monthlyCU,
                max_body_bytes: plan.maxBodyBytes, max_batch: plan.maxBatch, networks: plan.networks, cache: plan.cache,
                max_connections: plan.maxConnections, require_jwt: plan.requireJWT)
        }
        return .ok(.init(body: .json(.init(items: items))))
    }

    func listNetworks(_ input: Operations.listNetworks.Input) async throws -> Operations.listNetworks.Output {
        let items = fleet.networks().map { network in
            Components.Schemas.Network(
                name: network.name, chain_id: network.chainID, head: network.head.map(Int64.init(clamping:)),
                finalized: network.finalized.map(Int64.init(clamping:)), nodes: network.nodes.map(Self.node))
        }
        return .ok(.init(body: .json(.init(items: items))))
    }

    func cordonNode(_ input: Operations.cordonNode.Input) async throws -> Operations.cordonNode.Output {
        guard let node = await fleet.cordon(network: input.path.network, node: input.path.node, true) else {
            return .notFound(Self.problem(404, "no node '\(input.path.node)' in network '\(input.path.network)'"))
        }
        return .ok(.init(body: .json(Self.node(node))))
    }

    func uncordonNode(_ input: Operations.uncordonNode.Input) async throws -> Operations.uncordonNode.Output {
        guard let node = await fleet.cordon(network: input.path.network, node: input.path.node, false) else {
            return .notFound(Self.problem(404, "no node '\(input.path.node)' in network '\(input.path.network)'"))
        }
        return .ok(.init(body: .json(Self.node(node))))
    }

    static func node(_ node: NodeStatus) -> Components.Schemas.NodeStatus {
        Components.Schemas.NodeStatus(
            name: node.name, role: node.fallback ? .fallback : .primary, weight: node.weight, healthy: node.healthy, cordoned: node.cordoned,
            head: node.head.map(Int64.init(clamping:)), lag: node.lag.map(Int64.init(clamping:)),
            circuit: node.circuit == 2 ? .open : node.circuit == 1 ? .half_open : .closed, last_error: node.lastError)
    }
}
