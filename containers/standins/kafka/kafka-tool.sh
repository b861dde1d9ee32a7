#!/bin/bash
# The official image's /opt/kafka/bin/<tool>.sh for the few tools compose, the docs and the test use,
# run from the same jars (plus kafka-tools). The name this is called by picks the class.
set -euo pipefail
case "$(basename "$0")" in
  kafka-broker-api-versions.sh) class=org.apache.kafka.tools.BrokerApiVersionsCommand ;;
  kafka-consumer-groups.sh) class=org.apache.kafka.tools.consumer.group.ConsumerGroupCommand ;;
  kafka-storage.sh) class=kafka.tools.StorageTool ;;
  kafka-acls.sh) class=org.apache.kafka.tools.AclCommand ;;
  kafka-configs.sh) class=org.apache.kafka.tools.ConfigCommand ;;
  kafka-topics.sh) class=org.apache.kafka.tools.TopicCommand ;;
  *) echo "$(basename "$0"): not in this stand-in" >&2; exit 2 ;;
esac
exec java ${KAFKA_HEAP_OPTS:--Xmx256m} -Dlog4j2.configurationFile=/opt/kafka/config/tools-log4j2.properties \
  -cp '/opt/kafka/libs/*' "$class" "$@"
