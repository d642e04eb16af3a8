import Testing
@testable import TollgateApp

@Suite struct RedisConfigTests {
    @Test func theIssuesRedisSectionIsAcceptedAsWritten() throws {
        let config = try ConfigReader.parse(yaml: """
            networks:
              ethereum:
                chain_id: 1
                upstreams:
                  - url: http://127.0.0.1:8545
            redis:
              mode: standalone
              addresses: ["127.0.0.1:6379"]
            """)
        let redis = try #require(config.redis)
        #expect(redis.mode == .standalone)
        #expect(redis.addresses == ["127.0.0.1:6379"])
        #expect(redis.clientConfiguration().addresses.first?.port == 6379)
    }

    @Test func badRedisSettingsAreNamedByPath() {
        do {
            _ = try ConfigReader.parse(yaml: """
                redis:
                  mode: sentinel
                  addresses: ["nowhere"]
                  password: hunter2
                  tls: maybe
                  bogus: 1
                """)
            Issue.record("accepted a bad redis section")
        } catch {
            let paths = Set(error.issues.map(\.path))
            #expect(paths.isSuperset(of: ["redis.addresses[0]", "redis.master_name", "redis.password", "redis.tls", "redis.bogus"]))
            #expect(!error.description.contains("hunter2"))
        }
    }
}
