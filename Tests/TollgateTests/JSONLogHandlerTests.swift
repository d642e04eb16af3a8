import Foundation
import Logging
import Testing
import TollgateApp

@Suite(.serialized) struct JSONLogHandlerTests {
    /// Runs `body` with stderr redirected to a file and returns what was written.
    func capturingStandardError(_ body: () -> Void) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("log-\(UUID().uuidString)").path
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        let file = open(path, O_WRONLY)
        let saved = dup(2)
        dup2(file, 2)
        body()
        dup2(saved, 2)
        close(file)
        close(saved)
        return try String(contentsOfFile: path, encoding: .utf8)
    }

    @Test func writesOneJSONObjectPerLineWithMetadata() throws {
        var handler = JSONLogHandler(label: "tollgate")
        handler.logLevel = .info
        handler[metadataKey: "replica"] = "a"
        let logger = Logger(label: "tollgate", factory: { _ in handler })
        let output = try capturingStandardError {
            logger.info("request refused", metadata: ["request_id": "abc-1", "reason": "quote \" and\nnewline"])
            logger.debug("not at this level")
        }
        // Other suites run in parallel and share fd 2: look only at this handler's lines.
        let lines = output.split(separator: "\n").filter { $0.hasPrefix(#"{"ts":"#) && $0.contains(#""logger":"tollgate""#) }
        #expect(lines.count == 1)
        let object = try #require(String(lines[0]).jsonObject)
        #expect(object["msg"] as? String == "request refused")
        #expect(object["level"] as? String == "info")
        #expect(object["request_id"] as? String == "abc-1")
        #expect(object["replica"] as? String == "a")
        #expect(object["reason"] as? String == "quote \" and\nnewline")
        #expect(object["ts"] is Int)
    }
}
