import Testing
@testable import TollgateDataPlane

/// A client connection's rules without a channel: pipelining, backpressure, refusals, shutdown.
@Suite struct ConnectionStateMachineTests {
    @Test func oneRequestAtATimeAndTheRestQueueInOrder() {
        var state = ConnectionStateMachine(maxQueued: 4)
        let r1 = state.requestReceived()
        #expect(r1 == .serve)
        #expect(!state.mayContinue)
        let r2 = state.requestReceived()
        #expect(r2 == .queue)
        let r3 = state.requestReceived()
        #expect(r3 == .queue)
        let r4 = state.replyReady(clientKeepsAlive: true)
        #expect(r4 == .keepAlive(serveNext: true, resumeReads: false))
        let r5 = state.replyReady(clientKeepsAlive: true)
        #expect(r5 == .keepAlive(serveNext: true, resumeReads: false))
        let r6 = state.replyReady(clientKeepsAlive: true)
        #expect(r6 == .keepAlive(serveNext: false, resumeReads: false))
        #expect(state.mayContinue && !state.inFlight && state.queued == 0)
    }

    @Test func aFullQueuePausesReadsUntilItIsHalfDrained() {
        var state = ConnectionStateMachine(maxQueued: 4)
        let r7 = state.requestReceived()
        #expect(r7 == .serve)
        for _ in 0..<3 {
            let queued = state.requestReceived()
            #expect(queued == .queue)
        }
        let r8 = state.requestReceived()
        #expect(r8 == .queueAndPauseReads)
        #expect(state.readsPaused)
        // A request the client sent before the pause took effect queues without pausing again.
        let r9 = state.requestReceived()
        #expect(r9 == .queue)
        for _ in 0..<3 {
            let served = state.replyReady(clientKeepsAlive: true)
            #expect(served == .keepAlive(serveNext: true, resumeReads: false))
        }
        // Down to one waiting (under half of four): reads resume, once.
        let drained = state.replyReady(clientKeepsAlive: true)
        #expect(drained == .keepAlive(serveNext: true, resumeReads: true))
        #expect(!state.readsPaused)
        let last = state.replyReady(clientKeepsAlive: true)
        #expect(last == .keepAlive(serveNext: true, resumeReads: false))
        let idle = state.replyReady(clientKeepsAlive: true)
        #expect(idle == .keepAlive(serveNext: false, resumeReads: false))
    }

    @Test func aRefusalIsAnsweredInItsTurnThenTheConnectionCloses() {
        var state = ConnectionStateMachine(maxQueued: 16)
        let r13 = state.requestReceived()
        #expect(r13 == .serve)
        let r14 = state.requestReceived(refused: true)
        #expect(r14 == .queue)
        #expect(state.stopped)
        // The good request before it is answered and kept alive; the refusal comes next...
        let r15 = state.replyReady(clientKeepsAlive: true)
        #expect(r15 == .keepAlive(serveNext: true, resumeReads: false))
        // ...and its answer closes, whatever the client asked for.
        let r16 = state.replyReady(clientKeepsAlive: true)
        #expect(r16 == .close)
    }

    @Test func aClientThatAsksToCloseDropsWhatItPipelinedAfter() {
        var state = ConnectionStateMachine(maxQueued: 16)
        _ = state.requestReceived()
        _ = state.requestReceived()
        let r17 = state.replyReady(clientKeepsAlive: false)
        #expect(r17 == .close)
        #expect(state.queued == 0)
    }

    @Test func shutdownFinishesWhatWasReadThenCloses() {
        var idle = ConnectionStateMachine(maxQueued: 16)
        let r18 = idle.quiesce()
        #expect(r18)

        var busy = ConnectionStateMachine(maxQueued: 16)
        _ = busy.requestReceived()
        _ = busy.requestReceived()
        let r19 = busy.quiesce()
        #expect(!r19)
        let r20 = busy.replyReady(clientKeepsAlive: true)
        #expect(r20 == .keepAlive(serveNext: true, resumeReads: false))
        let r21 = busy.replyReady(clientKeepsAlive: true)
        #expect(r21 == .close)

        var arriving = ConnectionStateMachine(maxQueued: 16)
        arriving.headStarted()
        let r22 = arriving.quiesce()
        #expect(!r22)
    }

    @Test func idleAndHeaderTimeoutsOnlyCloseWhatIsReallyWaiting() {
        var state = ConnectionStateMachine(maxQueued: 16)
        #expect(state.idleTimeout())
        let r23 = state.headTimedOut()
        #expect(!r23)
        state.headStarted()
        #expect(!state.idleTimeout())
        let r24 = state.headTimedOut()
        #expect(r24)
        #expect(state.stopped)
        // The 408 is the refusal that closes.
        let r25 = state.requestReceived(refused: true)
        #expect(r25 == .serve)
        let r26 = state.replyReady(clientKeepsAlive: true)
        #expect(r26 == .close)

        var serving = ConnectionStateMachine(maxQueued: 16)
        _ = serving.requestReceived()
        #expect(!serving.idleTimeout())
    }
}
