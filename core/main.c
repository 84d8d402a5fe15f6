/* smtp-connector: run one SOAR action per request read on stdin. */
#include "core.h"

int main(int argc, char **argv)
{
	return sc_connector_main(argc, argv);
}
