/** @odoo-module */
/**
 * A lead's job card becomes an invoice in Sage and the lead Completed:
 * Generate Invoice > confirm > open the invoice > Confirm (post) > Send to Sage
 * > confirm > back on the lead: Invoicing status Completed, lead won.
 * Started by test_tours.py on the lead's form URL.
 */
import { registry } from "@web/core/registry";

registry.category("web_tour.tours").add("sage_job_to_completed_tour", {
    steps: () => [
        {
            content: "Generate Invoice from the job card",
            trigger: ".o_form_view .o_statusbar_buttons button[name=action_sage_generate_invoice]",
            run: "click",
        },
        {
            content: "Confirm",
            trigger: ".modal .modal-body:contains(Create a draft customer invoice from this job card?)",
        },
        {
            trigger: ".modal .modal-footer .btn-primary",
            run: "click",
        },
        {
            content: "Open the generated invoice",
            trigger: ".o_form_view button[name=action_view_sage_invoices]:contains(1)",
            run: "click",
        },
        {
            content: "The draft invoice carries the job card",
            trigger: ".o_form_view .o_statusbar_status button.o_arrow_button_current:contains(Draft)",
        },
        {
            content: "Confirm (post) the invoice",
            trigger: ".o_form_view .o_statusbar_buttons button[name=action_post]",
            run: "click",
        },
        {
            content: "Posted",
            trigger: ".o_form_view .o_statusbar_status button.o_arrow_button_current:contains(Posted)",
        },
        {
            content: "Send to Sage",
            trigger: ".o_form_view .o_statusbar_buttons button[name=action_sage_send]:contains(Send to Sage)",
            run: "click",
        },
        {
            trigger: ".modal .modal-body:contains(Are you sure you want to generate a Sage invoice?)",
        },
        {
            trigger: ".modal .modal-footer .btn-primary",
            run: "click",
        },
        {
            content: "The invoice shows its Sage number",
            trigger: ".o_form_view .o_field_widget[name=sage_number]:contains(SI-)",
        },
        {
            content: "Back to the lead",
            trigger: ".o_breadcrumb .breadcrumb-item a:contains(Boiler service, Harbour Bakery)",
            run: "click",
        },
        {
            content: "Open the job card",
            trigger: ".o_form_view .o_notebook a.nav-link:contains(Job card)",
            run: "click",
        },
        {
            content: "The job is Completed",
            trigger: ".o_form_view .o_field_widget[name=sage_invoicing_state]:contains(Completed)",
        },
        {
            content: "…and the lead won",
            trigger: ".o_form_view .o_widget_web_ribbon:contains(Won)",
        },
    ],
});
