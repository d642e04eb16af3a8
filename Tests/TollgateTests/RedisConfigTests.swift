import Foundation
import Testing
@testable import TollgateApp

/// The smallest valid networks section, for tests about other sections.
let oneNetwork = """
    networks:
      ethereum:
        chain_id: 1
        upstreams:
          - url: http://127.0.0.1:8545

    """

@Suite struct RedisConfigTests {
    @Test func theIssuesRedisSectionIsAcceptedAsWritten() throws {
        let config = try ConfigReader.parse(yaml: oneNetwork + """
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

@Suite struct DistributedConfigTests {
    @Test func theIssuesStoreAndRedisSectionsAreAcceptedAsWritten() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("cfg-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try "s3cret\n".write(toFile: directory + "/pg.password", atomically: true, encoding: .utf8)
        let config = try ConfigReader.parse(yaml: oneNetwork + """
            store:
              postgres:
                hosts: ["127.0.0.1:5432", "127.0.0.1:5433"]
                database: tollgate
                user: tollgate
                password_file: \(directory)/pg.password
            redis:
              mode: standalone
              addresses: ["127.0.0.1:6379"]
              password: file:\(directory)/pg.password
            """)
        // Redis re-reads a file-borne password for every new connection.
        #expect(config.redis?.password == "s3cret" && config.redis?.passwordFile == directory + "/pg.password")
        let postgres = try #require(config.store.postgres)
        let settings = postgres.settings()
        #expect(settings.hosts.map(\.port) == [5432, 5433])
        #expect(settings.database == "tollgate" && settings.user == "tollgate")
        #expect(settings.password == "s3cret")
        #expect(config.redis?.sharedLimits == true && config.redis?.localShare == 1)
    }

    @Test func badStoreSettingsAreNamedByPathAndSecretsStayOutOfMessages() {
        do {
            _ = try ConfigReader.parse(yaml: """
                store:
                  sqlite: ./x.db
                  anonymous_plan: ghost
                  postgres:
                    hosts: ["nowhere"]
                    password: hunter2
                    tls: sometimes
                    pool_size: 0
                redis:
                  addresses: ["127.0.0.1:6379"]
                  local_share: 2
                """)
            Issue.record("accepted a bad store section")
        } catch {
            let paths = Set(error.issues.map(\.path))
            #expect(paths.isSuperset(of: [
                "store", "store.anonymous_plan", "store.postgres.hosts[0]", "store.postgres.password", "store.postgres.tls",
                "store.postgres.pool_size", "redis.local_share",
            ]))
            #expect(!error.description.contains("hunter2"))
        }
    }
}
