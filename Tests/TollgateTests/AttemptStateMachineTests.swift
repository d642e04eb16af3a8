import NIOCore
import NIOHTTP1
import Testing
@testable import TollgateUpstream

/// The pool's retry and hedge rules as transcripts: each test feeds events (with the time, in
/// milliseconds) and compares every action the machine answers with. No sockets, no clock.
@Suite struct AttemptStateMachineTests {
    /// Drives one machine and writes down what it answers.
    struct Transcript {
        var machine: AttemptStateMachine
        var lines: [String] = []

        init(retryable: Bool = true, maxAttempts: Int = 3, nodes: Int = 3, timeoutMillis: Int64 = 1000, attemptMillis: Int64 = 400,
             hedgeMillis: Int64? = nil) {
            machine = AttemptStateMachine(
                settings: .init(
                    network: "eth", retryable: retryable, maxAttempts: maxAttempts, nodeCount: nodes,
                    requestTimeout: timeoutMillis * 1_000_000, attemptTimeout: attemptMillis * 1_000_000,
                    hedgeDelay: hedgeMillis.map { $0 * 1_000_000 }),
                now: 0)
        }

        mutating func start() { note(machine.start(now: 0)) }
        mutating func chose(_ node: Int?, others: Bool = false, at ms: Int64 = 0) { note(machine.chose(node, othersEligible: others, now: ms * 1_000_000)) }
        mutating func hedgeFired(at ms: Int64) { note(machine.hedgeTimerFired(now: ms * 1_000_000)) }
        mutating func choseHedge(_ node: Int?, at ms: Int64) { note(machine.choseHedge(node, now: ms * 1_000_000)) }
        mutating func budget(_ granted: Bool, at ms: Int64) { note(machine.retryBudget(granted: granted, now: ms * 1_000_000)) }
        mutating func good(_ leg: AttemptStateMachine.Leg = .first, node: String = "a", at ms: Int64) {
            note(machine.legFinished(leg, .good(Self.response(node: node, status: .ok)), now: ms * 1_000_000))
        }
        mutating func failed(
            _ failure: UpstreamFailure = .badGateway(network: "eth", detail: "x"), leg: AttemptStateMachine.Leg = .first,
            sent: Bool = true, answer: HTTPResponseStatus? = nil, at ms: Int64
        ) {
            let reply = answer.map { Self.response(node: "a", status: $0) }
            note(machine.legFinished(leg, .failed(failure, sentToNode: sent, answer: reply), now: ms * 1_000_000))
        }

        static func response(node: String, status: HTTPResponseStatus) -> UpstreamResponse {
            UpstreamResponse(status: status, body: ByteBuffer(string: "{}"), node: node, attempts: 1, upstreamNanos: 0)
        }

        private mutating func note(_ action: AttemptStateMachine.Action) { lines.append(Self.describe(action)) }

        static func describe(_ action: AttemptStateMachine.Action) -> String {
            switch action {
            case .none: return "none"
            case .choose(let excluding): return "choose excluding \(excluding)"
            case .chooseHedge(let excluding): return "choose hedge excluding \(excluding)"
            case .send(let node, let leg, let timeout, let hedge):
                return "send \(leg) to \(node) within \(timeout / 1_000_000)ms" + (hedge.map { ", hedge after \($0 / 1_000_000)ms" } ?? "")
            case .askRetryBudget: return "ask retry budget"
            case .finish(.success(let response)):
                return "answer \(response.status.code) from \(response.node) after \(response.attempts) attempts in \(response.upstreamNanos / 1_000_000)ms"
                    + (response.hedged ? ", hedged" : "")
            case .finish(.failure(let failure)): return "fail \(failure)"
            }
        }
    }

    @Test func aGoodFirstAnswerEndsIt() {
        var t = Transcript()
        t.start()
        t.chose(0)
        t.good(at: 12)
        #expect(t.lines == ["choose excluding []", "send first to 0 within 400ms", "answer 200 from a after 1 attempts in 12ms"])
        #expect(t.machine.isFinished)
    }

    @Test func aFailedReadIsRetriedOnANodeNotTriedYet() {
        var t = Transcript()
        t.start()
        t.chose(2)
        t.failed(.timeout(network: "eth", node: "c"), at: 400)
        t.budget(true, at: 400)
        t.chose(0, at: 400)
        t.good(node: "b", at: 450)
        #expect(t.lines == [
            "choose excluding []", "send first to 2 within 400ms",
            "ask retry budget", "choose excluding [2]",
            // The second try gets what is left of the request's deadline, capped per attempt.
            "send first to 0 within 400ms",
            "answer 200 from b after 2 attempts in 450ms",
        ])
    }

    @Test func theLastTryGetsOnlyWhatIsLeftOfTheDeadline() {
        var t = Transcript()
        t.start()
        t.chose(0)
        t.failed(at: 800)
        t.budget(true, at: 800)
        t.chose(1, at: 800)
        t.failed(.timeout(network: "eth", node: "b"), at: 1000)
        t.budget(true, at: 1000)
        #expect(t.lines == [
            "choose excluding []", "send first to 0 within 400ms", "ask retry budget", "choose excluding [0]",
            "send first to 1 within 200ms", "ask retry budget",
            // Past the deadline: the last failure is the answer, no third node is asked.
            "fail timeout(network: \"eth\", node: \"b\")",
        ])
    }

    @Test func aRefusedRetryBudgetGivesTheNodesOwnAnswer() {
        var t = Transcript()
        t.start()
        t.chose(0)
        t.failed(answer: .tooManyRequests, at: 5)
        t.budget(false, at: 5)
        #expect(t.lines == ["choose excluding []", "send first to 0 within 400ms", "ask retry budget", "answer 429 from a after 1 attempts in 5ms"])
    }

    @Test func aWriteIsResentOnlyWhenNothingReachedTheNode() {
        var sent = Transcript(retryable: false)
        sent.start()
        sent.chose(0)
        sent.failed(.timeout(network: "eth", node: "a"), sent: true, at: 400)
        #expect(sent.lines.last == "fail timeout(network: \"eth\", node: \"a\")")

        var refused = Transcript(retryable: false)
        refused.start()
        refused.chose(0)
        refused.failed(.unavailable(network: "eth"), sent: false, at: 1)
        refused.budget(true, at: 1)
        #expect(refused.lines.suffix(2) == ["ask retry budget", "choose excluding [0]"])
    }

    @Test func attemptsAndNodesBoundTheRetries() {
        var fewNodes = Transcript(nodes: 2)
        fewNodes.start()
        fewNodes.chose(0)
        fewNodes.failed(at: 1)
        fewNodes.budget(true, at: 1)
        fewNodes.chose(1, at: 1)
        fewNodes.failed(at: 2)
        // Both nodes tried: no budget is asked for a third.
        #expect(fewNodes.lines.last == "fail badGateway(network: \"eth\", detail: \"x\")")

        var oneAttempt = Transcript(maxAttempts: 1)
        oneAttempt.start()
        oneAttempt.chose(0)
        oneAttempt.failed(at: 1)
        #expect(oneAttempt.lines.last == "fail badGateway(network: \"eth\", detail: \"x\")")
    }

    @Test func noNodeLeftAnswersWithTheLastFailureOrUnavailable() {
        var none = Transcript()
        none.start()
        none.chose(nil)
        #expect(none.lines.last == "fail unavailable(network: \"eth\")")

        var later = Transcript()
        later.start()
        later.chose(0)
        later.failed(.timeout(network: "eth", node: "a"), at: 400)
        later.budget(true, at: 400)
        later.chose(nil, at: 400)
        #expect(later.lines.last == "fail timeout(network: \"eth\", node: \"a\")")
    }

    @Test func aSlowReadIsHedgedAndTheFirstGoodAnswerWins() {
        var t = Transcript(hedgeMillis: 20)
        t.start()
        t.chose(0, others: true)
        t.hedgeFired(at: 20)
        t.choseHedge(1, at: 20)
        t.good(.second, node: "b", at: 31)
        t.good(.first, node: "a", at: 90)  // the loser, after the end
        #expect(t.lines == [
            "choose excluding []", "send first to 0 within 400ms, hedge after 20ms",
            "choose hedge excluding [0]", "send second to 1 within 400ms",
            "answer 200 from b after 2 attempts in 31ms, hedged", "none",
        ])
    }

    @Test func aHedgedLegThatFailsLeavesTheOtherToAnswer() {
        var t = Transcript(hedgeMillis: 20)
        t.start()
        t.chose(0, others: true)
        t.hedgeFired(at: 20)
        t.choseHedge(1, at: 20)
        t.failed(leg: .first, at: 25)
        t.good(.second, node: "b", at: 40)
        #expect(t.lines.suffix(2) == ["none", "answer 200 from b after 2 attempts in 40ms, hedged"])
    }

    @Test func bothHedgedLegsFailingCountAsTwoAttempts() {
        var t = Transcript(maxAttempts: 3, hedgeMillis: 20)
        t.start()
        t.chose(0, others: true)
        t.hedgeFired(at: 20)
        t.choseHedge(1, at: 20)
        t.failed(leg: .first, at: 25)
        t.failed(leg: .second, at: 30)
        t.budget(true, at: 30)
        t.chose(2, at: 30)
        t.failed(at: 40)
        #expect(t.lines.suffix(5) == [
            "none", "ask retry budget", "choose excluding [0, 1]",
            // A retry is never hedged.
            "send first to 2 within 400ms",
            // Three attempts made: the third failure is final.
            "fail badGateway(network: \"eth\", detail: \"x\")",
        ])
    }

    @Test func noHedgeForWritesForALoneNodeOrWhenNoOtherIsEligible() {
        var write = Transcript(retryable: false, hedgeMillis: 20)
        write.start()
        write.chose(0, others: true)
        #expect(write.lines.last == "send first to 0 within 400ms")

        var alone = Transcript(hedgeMillis: 20)
        alone.start()
        alone.chose(0, others: false)
        #expect(alone.lines.last == "send first to 0 within 400ms")

        var noneLeft = Transcript(hedgeMillis: 20)
        noneLeft.start()
        noneLeft.chose(0, others: true)
        noneLeft.hedgeFired(at: 20)
        noneLeft.choseHedge(nil, at: 20)
        noneLeft.good(at: 50)
        #expect(noneLeft.lines.suffix(2) == ["none", "answer 200 from a after 1 attempts in 50ms"])
    }

    @Test func aHedgeTimerFromAnEndedTryDoesNothing() {
        var t = Transcript(hedgeMillis: 20)
        t.start()
        t.chose(0, others: true)
        t.failed(at: 5)
        t.budget(true, at: 5)
        t.chose(1, at: 5)
        t.hedgeFired(at: 20)
        t.good(node: "b", at: 30)
        t.hedgeFired(at: 40)
        #expect(t.lines.suffix(4) == ["send first to 1 within 400ms", "none", "answer 200 from b after 2 attempts in 30ms", "none"])
    }

    @Test func nodeSetsCountDrawAndRefuseMoreThanSixtyFourNodes() {
        let set: NodeSet = [0, 3, 63]
        #expect(set.count == 3)
        #expect(Array(set) == [0, 3, 63])
        #expect(set.member(1) == 3 && set.member(2) == 63 && set.member(3) == nil)
        #expect(set.contains(63) && !set.contains(64) && !set.contains(-1))
        #expect(NodeSet.all(64).count == 64 && NodeSet.all(3) == [0, 1, 2])
        #expect(set.subtracting([3]) == [0, 63])
    }
}
